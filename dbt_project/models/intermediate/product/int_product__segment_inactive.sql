{{ config(materialized='table') }}
-- Live accounts (paying in the as-of month, or with a key event in the last `months`
-- months) with no key event in the last `days` days and signed up at least `days` days ago.
with last_key as (
    select account_id, max(activity_date) as last_key_on
    from {{ ref('account_usage_daily') }}
    where key_events > 0
    group by 1
)

select
    rule.segment_key,
    a.account_id,
    null::text as user_id,
    null::text as user_email,
    format(
        'No key event in the last %s days (%s)%s',
        rule.days,
        coalesce('last key event on ' || k.last_key_on, 'none since signup on ' || a.signup_date),
        case when b.is_paying then '; paying ' || {{ product_money('b.mrr') }} || '/month' else '' end
    ) as reason
from {{ ref('int_product__accounts') }} as a
cross join {{ product_segment_rule('inactive') }}
left join last_key as k using (account_id)
left join {{ ref('int_product__billing_monthly') }} as b
    on b.account_id = a.account_id and b.month = date_trunc('month', rule.as_of_date)::date
where a.signup_date <= rule.as_of_date - rule.days
  and (k.last_key_on is null or k.last_key_on <= rule.as_of_date - rule.days)
  and (
      coalesce(b.is_paying, false)
      or k.last_key_on > (rule.as_of_date - make_interval(months => rule.months))::date
  )

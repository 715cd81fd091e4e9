-- Accounts in the audience (by default paying) with no key event in the last `days` days,
-- signed up at least `days` days ago.
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
        case when st.is_paying then '; paying ' || {{ product_money('st.mrr') }} || '/month' else '' end
    ) as reason,
    null::integer as priority
from {{ ref('int_product__accounts') }} as a
cross join {{ product_segment_rule('inactive') }}
{{ segment_audience('a.account_id') }}
left join last_key as k on k.account_id = a.account_id
where a.signup_date <= rule.as_of_date - rule.days
  and (k.last_key_on is null or k.last_key_on <= rule.as_of_date - rule.days)

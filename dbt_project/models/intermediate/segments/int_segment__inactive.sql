-- Accounts in the audience (by default paying) with no key event in the last `days` days,
-- signed up at least `days` days ago. Reads the usage of those days only (an index range
-- on activity_date), then each member's last key event before them (an index lookup per
-- member), never the whole history.
with recent as (
    select distinct u.account_id
    from {{ ref('int_product__usage_daily') }} as u
    cross join {{ product_segment_rule('inactive') }}
    where u.activity_date > rule.as_of_date - rule.days
      and u.activity_date <= rule.as_of_date
      and u.key_events > 0
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
cross join lateral (
    select max(u.activity_date) as last_key_on
    from {{ ref('int_product__usage_daily') }} as u
    where u.account_id = a.account_id
      and u.activity_date <= rule.as_of_date - rule.days
      and u.key_events > 0
) as k
where a.signup_date <= rule.as_of_date - rule.days
  and not exists (select 1 from recent as r where r.account_id = a.account_id)

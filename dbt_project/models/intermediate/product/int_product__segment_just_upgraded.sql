{{ config(materialized='table') }}
-- Accounts with a Plan Upgraded event in the last `days` days, or an MRR expansion in a
-- month whose snapshot falls in that window (the month of as_of_date counts).
with signals as (
    select
        u.account_id,
        format('Plan Upgraded on %s', max(u.activity_date)) as signal
    from {{ ref('account_usage_daily') }} as u
    cross join {{ product_segment_rule('just_upgraded') }}
    where u.event_counts ? 'Plan Upgraded'
      and u.activity_date > rule.as_of_date - rule.days
      and u.activity_date <= rule.as_of_date
    group by 1

    union all

    select
        b.account_id,
        format('MRR expansion in %s: %s -> %s', to_char(b.month, 'YYYY-MM'),
            {{ product_money('b.previous_mrr') }}, {{ product_money('b.mrr') }}) as signal
    from {{ ref('int_product__billing_monthly') }} as b
    cross join {{ product_segment_rule('just_upgraded') }}
    where b.movement = 'expansion'
      and (b.month + interval '1 month' - interval '1 day')::date > rule.as_of_date - rule.days
      and b.month <= rule.as_of_date
)

select
    rule.segment_key,
    s.account_id,
    null::text as user_id,
    null::text as user_email,
    string_agg(s.signal, '; ' order by s.signal) || coalesce(' (plan now ' || a.plan || ')', '') as reason
from signals as s
cross join {{ product_segment_rule('just_upgraded') }}
left join {{ ref('int_product__accounts') }} as a using (account_id)
group by rule.segment_key, s.account_id, a.plan

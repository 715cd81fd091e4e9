{{ config(materialized='table') }}
-- Paying accounts with MRR above `threshold`, paying for `months`+ months, whose key events
-- in the last `days` days are down by at least `share` against the `days` days before.
with usage as (
    select
        u.account_id,
        coalesce(sum(u.key_events) filter (where u.activity_date > rule.as_of_date - rule.days), 0) as recent,
        coalesce(sum(u.key_events) filter (where u.activity_date <= rule.as_of_date - rule.days), 0) as previous
    from {{ ref('account_usage_daily') }} as u
    cross join {{ product_segment_rule('high_value_declining') }}
    where u.activity_date > rule.as_of_date - 2 * rule.days and u.activity_date <= rule.as_of_date
    group by 1
)

select
    rule.segment_key,
    b.account_id,
    null::text as user_id,
    null::text as user_email,
    format(
        'MRR %s, paying for %s months, key events down %s%% (%s in the last %s days vs %s before)',
        {{ product_money('b.mrr') }}, tenure.months_paying,
        round(100.0 * (1 - coalesce(u.recent, 0)::numeric / u.previous)), coalesce(u.recent, 0), rule.days, u.previous
    ) as reason
from {{ ref('int_product__billing_monthly') }} as b
cross join {{ product_segment_rule('high_value_declining') }}
cross join lateral (
    select ((extract(year from b.month) - extract(year from b.first_paid_month)) * 12
        + extract(month from b.month) - extract(month from b.first_paid_month))::integer as months_paying
) as tenure
inner join usage as u on u.account_id = b.account_id
where b.month = date_trunc('month', rule.as_of_date)::date
  and b.is_paying
  and b.mrr > rule.threshold
  and tenure.months_paying >= rule.months
  and u.previous > 0
  and u.recent <= (1 - rule.share) * u.previous

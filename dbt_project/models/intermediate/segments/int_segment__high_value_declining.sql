-- Paying accounts with MRR above `threshold`, paying for `months`+ months, whose key events
-- in the `days` days up to a day are down by at least `share` against the `days` days
-- before. Hysteresis: the usage decline is evaluated on each of the last `stay_days` days
-- (audience, MRR and tenure on the as-of date), and a member stays until it has failed on
-- `stay_days` consecutive days (the reason is the latest day it held). Only the accounts
-- that pass the as-of conditions have their usage read (about one in ten on `large`).
with candidates as (
    select
        st.account_id,
        st.mrr,
        ((extract(year from age(rule.as_of_date, st.first_paid_on)) * 12)
            + extract(month from age(rule.as_of_date, st.first_paid_on)))::integer as months_paying
    from {{ ref('int_account_states_as_of') }} as st
    cross join {{ product_segment_rule('high_value_declining') }}
    where st.lifecycle_stage = any(rule.stages)
      and st.is_paying
      and st.mrr > rule.threshold
),

usage as (
    select
        u.account_id,
        d.day,
        coalesce(sum(u.key_events) filter (where u.activity_date > d.day - rule.days), 0) as recent,
        coalesce(sum(u.key_events) filter (where u.activity_date <= d.day - rule.days), 0) as previous
    from candidates as c
    cross join {{ product_segment_rule('high_value_declining') }}
    inner join {{ ref('int_product__usage_daily') }} as u on u.account_id = c.account_id
    {{ segment_days() }}
    where c.months_paying >= rule.months
      and {{ segment_window('high_value_declining', 'u.activity_date', reach='2 * rule.days - 1') }}
      and u.activity_date > d.day - 2 * rule.days
      and u.activity_date <= d.day
    group by 1, 2
),

held as (
    select
        rule.segment_key,
        c.account_id,
        null::text as user_id,
        null::text as user_email,
        format(
            'MRR %s, paying for %s months, key events down %s%% (%s in the last %s days vs %s before)',
            {{ product_money('c.mrr') }}, c.months_paying,
            round(100.0 * (1 - u.recent::numeric / u.previous)), u.recent, rule.days, u.previous
        ) as reason,
        null::integer as priority,
        u.day
    from usage as u
    inner join candidates as c using (account_id)
    cross join {{ product_segment_rule('high_value_declining') }}
    where u.previous > 0
      and u.recent <= (1 - rule.share) * u.previous
)

{{ segment_latest_hold('high_value_declining', 'held') }}

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

-- the key events of each day of the window (the evaluated days and the 2 x `days` before the
-- first), zero on days without usage, as a running sum per account: the sums over the
-- `days` up to a day and the `days` before are differences of that sum `days` and
-- 2 x `days` rows back. (Summing the usage rows once per evaluated day made every row ten
-- rows, most of this model's time.)
usage_rows as (
    select u.account_id, u.activity_date, u.key_events
    from candidates as c
    cross join {{ product_segment_rule('high_value_declining') }}
    inner join {{ ref('int_product__usage_daily') }} as u on u.account_id = c.account_id
    where c.months_paying >= rule.months
      and {{ segment_window('high_value_declining', 'u.activity_date', reach='2 * rule.days - 1') }}
),

usage_days as (
    select
        c.account_id,
        g::date as day,
        sum(coalesce(u.key_events, 0)) over (partition by c.account_id order by g) as running
    from candidates as c
    cross join {{ product_segment_rule('high_value_declining') }}
    cross join lateral generate_series(
        rule.as_of_date - rule.stay_days - (2 * rule.days - 1) + 1, rule.as_of_date, interval '1 day') as g
    left join usage_rows as u on u.account_id = c.account_id and u.activity_date = g::date
    where c.months_paying >= rule.months
),

usage as (
    select account_id, day, running - lag_1 as recent, lag_1 - lag_2 as previous
    from (
        select
            u.account_id,
            u.day,
            u.running,
            lag(u.running, rule.days, 0::bigint) over w as lag_1,
            lag(u.running, 2 * rule.days, 0::bigint) over w as lag_2
        from usage_days as u
        cross join {{ product_segment_rule('high_value_declining') }}
        window w as (partition by u.account_id order by u.day)
    ) as s
    cross join {{ product_segment_rule('high_value_declining') }}
    where s.day > rule.as_of_date - rule.stay_days
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

-- Accounts in the audience (by default paying) with no key event in the `days` days up to
-- a day, signed up at least `days` days before it. Hysteresis: evaluated on each of the
-- last `stay_days` days, and a member stays until it has failed on `stay_days` consecutive
-- days (one key event does not end it at once). Per audience account and day, one index
-- lookup of its last key event up to that day; never the whole history.
with held as (
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
        null::integer as priority,
        d.day
    from {{ ref('int_product__accounts') }} as a
    cross join {{ product_segment_rule('inactive') }}
    {{ segment_days() }}
    {{ segment_audience('a.account_id') }}
    cross join lateral (
        select max(u.activity_date) as last_key_on
        from {{ ref('int_product__usage_daily') }} as u
        where u.account_id = a.account_id
          and u.activity_date <= d.day
          and u.key_events > 0
    ) as k
    where a.signup_date <= d.day - rule.days
      and (k.last_key_on is null or k.last_key_on <= d.day - rule.days)
)

{{ segment_latest_hold('inactive', 'held') }}

-- Raw health signals per account and scoring date (int_product__health_dates): usage in
-- the 28-day window ending that day (W) and the 28 days before it (P), billing of that
-- month, support tickets and NPS. Scope: accounts signed up by then that pay that month
-- or had a key event in W.
with dates as (
    select score_date, is_month_end from {{ ref('int_product__health_dates') }}
),

usage as (
    select * from {{ ref('account_usage_daily') }}
),

windows as (
    select
        d.score_date,
        u.account_id,
        coalesce(sum(u.key_events) filter (where u.activity_date > d.score_date - 28), 0) as key_events_28d,
        coalesce(sum(u.key_events) filter (where u.activity_date <= d.score_date - 28), 0) as key_events_prev_28d,
        coalesce(sum(u.reach) filter (where u.activity_date > d.score_date - 28), 0) as reach_28d
    from dates as d
    inner join usage as u on u.activity_date between d.score_date - 55 and d.score_date
    group by 1, 2
),

features as (
    select d.score_date, u.account_id, count(distinct f.feature_key) as key_features_28d
    from dates as d
    inner join usage as u on u.activity_date between d.score_date - 27 and d.score_date
    cross join lateral jsonb_array_elements_text(u.key_features) as f(feature_key)
    group by 1, 2
),

seats as (
    select d.score_date, u.account_id, count(distinct s.user_id) as active_seats_28d
    from dates as d
    inner join usage as u on u.activity_date between d.score_date - 27 and d.score_date
    cross join lateral jsonb_array_elements_text(u.active_user_ids) as s(user_id)
    group by 1, 2
),

billing as (
    select * from {{ ref('int_product__billing_monthly') }}
),

tickets as (
    select d.score_date, t.account_id, count(*) as tickets_28d
    from dates as d
    inner join {{ ref('stg_helpdesk__tickets') }} as t
        on (t.created_at at time zone 'UTC')::date between d.score_date - 27 and d.score_date
    group by 1, 2
),

support_source as (
    select min((created_at at time zone 'UTC')::date) as first_ticket_date
    from {{ ref('stg_helpdesk__tickets') }}
),

nps as (
    select d.score_date, r.account_id, avg(r.score) as nps_avg, count(*) as nps_responses
    from dates as d
    inner join {{ ref('stg_nps__responses') }} as r
        on (r.responded_at at time zone 'UTC')::date
            between d.score_date - {{ var('product_health_nps_lookback_days') | int }} + 1 and d.score_date
    group by 1, 2
),

key_feature_total as (
    select count(distinct feature_key) as key_features_total
    from {{ ref('product_event_catalogue') }}
    where is_key_feature
),

scope as (
    select w.score_date, w.account_id from windows as w where w.key_events_28d > 0
    union
    select d.score_date, b.account_id
    from dates as d
    inner join billing as b on b.month = date_trunc('month', d.score_date)::date and b.is_paying
)

select
    s.score_date,
    d.is_month_end,
    s.account_id,
    a.signup_date,
    coalesce(b.is_paying, false) as is_paying,
    coalesce(b.mrr, 0) as mrr,
    b.paid_seats,
    coalesce(w.key_events_28d, 0)::integer as key_events_28d,
    coalesce(w.key_events_prev_28d, 0)::integer as key_events_prev_28d,
    a.signup_date <= s.score_date - 55 as has_previous_window,
    coalesce(f.key_features_28d, 0)::integer as key_features_28d,
    k.key_features_total::integer as key_features_total,
    coalesce(st.active_seats_28d, 0)::integer as active_seats_28d,
    coalesce(w.reach_28d, 0) as reach_28d,
    coalesce(t.tickets_28d, 0)::integer as tickets_28d,
    coalesce(ss.first_ticket_date <= s.score_date, false) as support_available,
    n.nps_avg,
    coalesce(n.nps_responses, 0)::integer as nps_responses
from scope as s
inner join dates as d using (score_date)
inner join {{ ref('int_product__accounts') }} as a
    on a.account_id = s.account_id and a.signup_date <= s.score_date
cross join key_feature_total as k
cross join support_source as ss
left join windows as w on w.score_date = s.score_date and w.account_id = s.account_id
left join features as f on f.score_date = s.score_date and f.account_id = s.account_id
left join seats as st on st.score_date = s.score_date and st.account_id = s.account_id
left join billing as b on b.account_id = s.account_id and b.month = date_trunc('month', s.score_date)::date
left join tickets as t on t.score_date = s.score_date and t.account_id = s.account_id
left join nps as n on n.score_date = s.score_date and n.account_id = s.account_id

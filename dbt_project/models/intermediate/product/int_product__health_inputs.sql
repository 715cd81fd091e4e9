{#-
  Health inputs per account and day in scope: the signals of int_product__health_signals
  (usage in the 28 days ending that day (W) and the 28 days before (P), distinct key
  features and active seats in W, support tickets in W, NPS of the last
  product_health_nps_lookback_days days) plus the billing in force that day
  (int_billing_account_spells: MRR and paid seats as they stood, not a month-end snapshot).
  Scope: accounts signed up by then that pay that day or had a key event in W. Every day
  from the first day with events to int_product__as_of is scored.

  Incremental: each run replaces the days from the first day it has not built, the first
  day the signals rebuilt, or the first day whose billing int_billing_account_spells changed
  (rebuilt_from: notify_rebuilt of both, however far back). The signals and billing before
  that day did not change, so the rows read here are final.
-#}
{{ config(**product_health_daily_config()) }}
{{ config(post_hook="{{ notify_rebuilt('date') }}") }}
{%- set score_from = rebuilt_from('date') %}
{{ replace_where(rebuilt_days('date', score_from)) }}
{%- set window = var('product_health_window_days') | int -%}

with bounds as (
    {{ product_health_bounds(score_from) }}
),

signal_days as (
    select s.*
    from {{ ref('int_product__health_signals') }} as s
    where s.date >= (select score_from from bounds)
      and s.date <= (select score_to from bounds)
),

-- billing as it stood that day (point in time: no month-end snapshot looking ahead)
billing as (
    select b.account_id, b.valid_from, b.valid_to, b.is_paying, b.mrr, b.paid_seats
    from {{ ref('int_billing_account_spells') }} as b
    cross join bounds as x
    where b.valid_to is null or b.valid_to >= x.score_from
),

paying_days as (
    select b.account_id, d.date_day as date
    from billing as b
    cross join bounds as x
    cross join lateral ({{ date_spine(
        'greatest(b.valid_from, x.score_from)', 'least(coalesce(b.valid_to, x.score_to), x.score_to)') }}) as d
    where b.is_paying and b.valid_from <= x.score_to
),

scope as (
    select
        coalesce(s.account_id, p.account_id) as account_id,
        coalesce(s.date, p.date) as date,
        s.key_events_28d, s.key_events_prev_28d, s.reach_28d, s.active_seats_28d, s.key_features_28d,
        s.tickets_28d, s.nps_sum, s.nps_responses
    from signal_days as s
    full join paying_days as p on p.account_id = s.account_id and p.date = s.date
    where s.key_events_28d > 0 or p.account_id is not null
),

key_feature_total as (
    select count(distinct feature_key) as key_features_total
    from {{ ref('product_event_catalogue') }}
    where is_key_feature
),

support_source as (
    select min((created_at at time zone 'UTC')::date) as first_ticket_date
    from {{ ref('stg_helpdesk__tickets') }}
)

select
    s.date,
    s.date = (date_trunc('month', s.date) + interval '1 month' - interval '1 day')::date as is_month_end,
    s.account_id,
    a.signup_date,
    coalesce(b.is_paying, false) as is_paying,
    coalesce(b.mrr, 0) as mrr,
    b.paid_seats,
    coalesce(s.key_events_28d, 0)::integer as key_events_28d,
    coalesce(s.key_events_prev_28d, 0)::integer as key_events_prev_28d,
    a.signup_date <= s.date - {{ 2 * window - 1 }} as has_previous_window,
    coalesce(s.key_features_28d, 0)::integer as key_features_28d,
    k.key_features_total::integer as key_features_total,
    coalesce(s.active_seats_28d, 0)::integer as active_seats_28d,
    coalesce(s.reach_28d, 0) as reach_28d,
    coalesce(s.tickets_28d, 0)::integer as tickets_28d,
    coalesce(ss.first_ticket_date <= s.date, false) as support_available,
    s.nps_sum::numeric / nullif(s.nps_responses, 0) as nps_avg,
    coalesce(s.nps_responses, 0)::integer as nps_responses
from scope as s
inner join {{ ref('int_product__accounts') }} as a
    on a.account_id = s.account_id and a.signup_date <= s.date
cross join key_feature_total as k
cross join support_source as ss
left join billing as b
    on b.account_id = s.account_id and s.date >= b.valid_from and (b.valid_to is null or s.date <= b.valid_to)

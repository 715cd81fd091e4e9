{#- One row per month: MRR bridge, logo counts and rates (METRICS.md, Rates).
    start + new + expansion + reactivation - contraction - churn = end, to the cent. -#}
-- only the columns read below: the CTE is read seven times, so Postgres keeps it whole.
-- account_id compared bytewise (collation "C"; equality is the same in every deterministic
-- collation): the self-join below sorts every account-month by it, and the database's
-- collation made those sorts most of this model's time.
with monthly as (
    select account_id collate "C" as account_id, month, mrr, previous_mrr, movement, movement_amount, is_paying
    from {{ ref('mrr_monthly') }}
),

months as (
    select month from {{ ref('int_finance_months_spined') }}
),

bridge as (
    select
        month,
        sum(previous_mrr) as start_mrr,
        sum(case when movement = 'new' then movement_amount else 0 end) as new_mrr,
        sum(case when movement = 'reactivation' then movement_amount else 0 end) as reactivation_mrr,
        sum(case when movement = 'expansion' then movement_amount else 0 end) as expansion_mrr,
        -sum(case when movement = 'contraction' then movement_amount else 0 end) as contraction_mrr,
        -sum(case when movement = 'churn' then movement_amount else 0 end) as churned_mrr,
        sum(mrr) as end_mrr,
        count(*) filter (where movement <> 'new' and movement <> 'reactivation') as start_logos,
        count(*) filter (where movement = 'new') as new_logos,
        count(*) filter (where movement = 'reactivation') as reactivated_logos,
        count(*) filter (where movement = 'churn') as churned_logos,
        count(*) filter (where is_paying) as end_logos
    from monthly
    group by 1
),

{%- set windows = [('1m', 1), ('t3m', 3), ('t12m', 12)] %}
-- for each window of k months: the accounts paying k months before, and what they pay now
-- (0 when gone). The three windows in one join, on the month as a date: a hash join (a
-- date = timestamp condition can only be merged: two sorts of every account-month per window)
trailing_windows as (
    select
        w.k,
        (then_.month + make_interval(months => w.k))::date as month,
        sum(then_.mrr) as base_mrr,
        sum(coalesce(now_.mrr, 0)) as retained_mrr,
        sum(least(coalesce(now_.mrr, 0), then_.mrr)) as gross_retained_mrr
    from monthly as then_
    cross join (values {% for name, k in windows %}({{ k }}){{ ', ' if not loop.last }}{% endfor %}) as w (k)
    left join monthly as now_
        on now_.account_id = then_.account_id
        and now_.month = (then_.month + make_interval(months => w.k))::date
    where then_.mrr > 0
    group by 1, 2
),

first_month as (
    select min(month) as first_month from months
)

select
    months.month::date as month,
    coalesce(bridge.start_mrr, 0)::numeric(14, 2) as start_mrr,
    coalesce(bridge.new_mrr, 0)::numeric(14, 2) as new_mrr,
    coalesce(bridge.reactivation_mrr, 0)::numeric(14, 2) as reactivation_mrr,
    coalesce(bridge.expansion_mrr, 0)::numeric(14, 2) as expansion_mrr,
    coalesce(bridge.contraction_mrr, 0)::numeric(14, 2) as contraction_mrr,
    coalesce(bridge.churned_mrr, 0)::numeric(14, 2) as churned_mrr,
    coalesce(bridge.end_mrr, 0)::numeric(14, 2) as end_mrr,
    coalesce(bridge.start_logos, 0)::integer as start_logos,
    coalesce(bridge.new_logos, 0)::integer as new_logos,
    coalesce(bridge.reactivated_logos, 0)::integer as reactivated_logos,
    coalesce(bridge.churned_logos, 0)::integer as churned_logos,
    coalesce(bridge.end_logos, 0)::integer as end_logos,
    round(bridge.churned_logos::numeric / nullif(bridge.start_logos, 0), 6)::numeric(10, 6)
        as logo_churn_rate,
    round((bridge.churned_mrr + bridge.contraction_mrr) / nullif(bridge.start_mrr, 0), 6)::numeric(10, 6)
        as gross_mrr_churn_rate,
    round(
        (bridge.churned_mrr + bridge.contraction_mrr - bridge.expansion_mrr - bridge.reactivation_mrr)
        / nullif(bridge.start_mrr, 0),
        6
    )::numeric(10, 6) as net_mrr_churn_rate,
    {%- for name, k in windows %}
    round(trailing_{{ name }}.retained_mrr / nullif(trailing_{{ name }}.base_mrr, 0), 6)::numeric(10, 6) as nrr_{{ name }},
    round(trailing_{{ name }}.gross_retained_mrr / nullif(trailing_{{ name }}.base_mrr, 0), 6)::numeric(10, 6)
        as grr_{{ name }},
    (case
        when (months.month - interval '{{ k }} months')::date < first_month.first_month then 'history_too_short'
        when coalesce(trailing_{{ name }}.base_mrr, 0) = 0 then 'no_paying_base'
        else 'ok'
    end)::text as retention_{{ name }}_status{{ ',' if not loop.last }}
    {%- endfor %}
from months
cross join first_month
left join bridge on bridge.month = months.month
{%- for name, k in windows %}
left join trailing_windows as trailing_{{ name }} on trailing_{{ name }}.k = {{ k }} and trailing_{{ name }}.month = months.month
{%- endfor %}

{#-
  How well the month-end health tier predicted churn. For each past month-end and tier
  (plus 'all'): paying accounts scored, how many churned within the next 60 / 90 days,
  churn rate, lift vs the month's base rate, and the month's AUC of the score against
  60-day and 90-day churn (same value on every row of the month). A row whose horizon
  reaches past the billing data is flagged (is_horizon_complete_60d / _90d = false): its
  churn counts can still grow, so it is not final.
  Churn comes from billing (mrr_monthly movement = 'churn', month-end snapshots), so the
  horizon is counted in snapshots: 60 days = the next 2 month-ends, 90 days = the next 3.
  AUC by the rank-sum (Mann-Whitney) formula: the probability that a churner scored lower
  than a non-churner, ties counting one half.
-#}
with scored as (
    select
        date_trunc('month', date)::date as score_month,
        account_id,
        health_score,
        tier
    from {{ ref('int_product__health_daily') }}
    -- the month-ends as a list: an index-only scan of the model's month-end index (its
    -- post-hook health_month_end_index, on the same health_month_end_rows()), not a pass
    -- over every scored day
    where date = any(array(
        select (m + interval '1 month' - interval '1 day')::date
        from generate_series(
            date_trunc('month', (select min(date) from {{ ref('int_product__health_daily') }})),
            (select max(date) from {{ ref('int_product__health_daily') }}), interval '1 month') as m))
      and {{ health_month_end_rows() }}
),

billing as (
    select account_id, month, movement from {{ ref('mrr_monthly') }}
),

last_month as (
    select max(month) as last_billing_month from billing
),

-- the first churn after each snapshot (an equi-join on the account, not a subquery per row)
next_churn as (
    select s.account_id, s.score_month, min(b.month) as churn_month
    from scored as s
    inner join billing as b on b.account_id = s.account_id and b.movement = 'churn' and b.month > s.score_month
    group by 1, 2
),

outcomes as (
    select
        s.*,
        coalesce(c.churn_month <= (s.score_month + interval '2 months')::date, false) as churned_60d,
        coalesce(c.churn_month <= (s.score_month + interval '3 months')::date, false) as churned_90d
    from scored as s
    left join next_churn as c using (account_id, score_month)
),

ranked as (
    -- rank ascending by risk (= descending health); ties get their average rank
    select
        *,
        rank() over (partition by score_month order by health_score desc)
            + (count(*) over (partition by score_month, health_score) - 1) / 2.0 as risk_rank
    from outcomes
),

auc as (
    select
        score_month,
        {%- for h in ['60d', '90d'] %}
        (sum(risk_rank) filter (where churned_{{ h }})
            - count(*) filter (where churned_{{ h }}) * (count(*) filter (where churned_{{ h }}) + 1) / 2.0)
        / nullif(count(*) filter (where churned_{{ h }}) * count(*) filter (where not churned_{{ h }}), 0)
            as auc_{{ h }}{{ ',' if not loop.last }}
        {%- endfor %}
    from ranked
    group by 1
),

tiers as (
    select tier from (values ('red'), ('yellow'), ('green'), ('all')) as t (tier)
),

months as (
    select distinct score_month from outcomes
),

per_tier as (
    select
        m.score_month,
        t.tier,
        count(o.account_id) as accounts,
        count(o.account_id) filter (where o.churned_60d) as churned_60d,
        count(o.account_id) filter (where o.churned_90d) as churned_90d
    from months as m
    cross join tiers as t
    left join outcomes as o
        on o.score_month = m.score_month and (t.tier = 'all' or o.tier = t.tier)
    group by 1, 2
),

rates as (
    select
        p.*,
        p.churned_60d::numeric / nullif(p.accounts, 0) as churn_rate_60d,
        p.churned_90d::numeric / nullif(p.accounts, 0) as churn_rate_90d
    from per_tier as p
)

select
    r.score_month::date as score_month,
    r.tier::text as tier,
    r.accounts::integer as accounts,
    r.churned_60d::integer as churned_60d,
    r.churned_90d::integer as churned_90d,
    round(r.churn_rate_60d, 4)::numeric(5, 4) as churn_rate_60d,
    round(r.churn_rate_90d, 4)::numeric(5, 4) as churn_rate_90d,
    round(b.churn_rate_60d, 4)::numeric(5, 4) as base_churn_rate_60d,
    round(b.churn_rate_90d, 4)::numeric(5, 4) as base_churn_rate_90d,
    round(r.churn_rate_60d / nullif(b.churn_rate_60d, 0), 3)::numeric(8, 3) as lift_60d,
    round(r.churn_rate_90d / nullif(b.churn_rate_90d, 0), 3)::numeric(8, 3) as lift_90d,
    round(a.auc_60d, 4)::numeric(5, 4) as auc_60d,
    round(a.auc_90d, 4)::numeric(5, 4) as auc_90d,
    ((r.score_month + interval '2 months')::date <= l.last_billing_month)::boolean as is_horizon_complete_60d,
    ((r.score_month + interval '3 months')::date <= l.last_billing_month)::boolean as is_horizon_complete_90d
from rates as r
inner join rates as b on b.score_month = r.score_month and b.tier = 'all'
left join auc as a on a.score_month = r.score_month
cross join last_month as l

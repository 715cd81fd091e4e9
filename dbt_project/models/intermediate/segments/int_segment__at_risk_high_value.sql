-- Paying accounts with MRR of at least `min_mrr` in the red tier, or down `threshold`
-- points or more over `days` days; ranked by MRR (priority 1 = the largest) for a person
-- to call. Hysteresis: the health rule is evaluated on each of the last `stay_days` days
-- (payment and MRR on the as-of date), and a member stays until it has failed on
-- `stay_days` consecutive days.
with held as (
    select
        rule.segment_key,
        h.account_id,
        null::text as user_id,
        null::text as user_email,
        format(
            'Pays %s/month; health %s (%s)%s',
            {{ product_money('st.mrr') }}, h.health_score, h.tier,
            case when p.health_score is not null
                then format(', %s points in %s days (from %s)',
                    case when h.health_score <= p.health_score then '-' else '+' end || abs(h.health_score - p.health_score),
                    rule.days, p.health_score)
                else '' end
        ) as reason,
        null::integer as priority,
        h.date as day
    from {{ ref('int_product__health_daily') }} as h
    cross join {{ product_segment_rule('at_risk_high_value') }}
    {{ segment_audience('h.account_id') }}
    left join {{ ref('int_product__health_daily') }} as p
        on p.account_id = h.account_id and p.date = h.date - rule.days
    where {{ segment_window('at_risk_high_value', 'h.date') }}
      and st.is_paying
      and st.mrr >= rule.min_mrr
      and (h.tier = 'red' or p.health_score - h.health_score >= rule.threshold)
),

members as (
    {{ segment_latest_hold('at_risk_high_value', 'held') }}
),

ranked as (
    -- the health score on the as-of date ranks ties; a member kept from an earlier day
    -- has one too (health is scored every day)
    select m.*, st.mrr, coalesce(h.health_score, 0) as health_score
    from members as m
    inner join {{ ref('int_account_states_as_of') }} as st using (account_id)
    cross join {{ product_segment_rule('at_risk_high_value') }}
    left join {{ ref('int_product__health_daily') }} as h
        on h.account_id = m.account_id and h.date = rule.as_of_date
)

select
    segment_key,
    account_id,
    user_id,
    user_email,
    reason,
    (row_number() over (order by mrr desc, health_score, account_id))::integer as priority
from ranked

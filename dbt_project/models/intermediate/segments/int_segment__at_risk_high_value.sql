-- Paying accounts with MRR of at least `min_mrr` in the red tier, or down `threshold`
-- points or more over `days` days, on the as-of date; ranked by MRR (priority 1 = the
-- largest) for a person to call.
with at_risk as (
    select h.account_id, h.health_score, h.tier, p.health_score as earlier_score, st.mrr
    from {{ ref('int_product__health_daily') }} as h
    cross join {{ product_segment_rule('at_risk_high_value') }}
    {{ segment_audience('h.account_id') }}
    left join {{ ref('int_product__health_daily') }} as p
        on p.account_id = h.account_id and p.date = h.date - rule.days
    where h.date = rule.as_of_date
      and st.is_paying
      and st.mrr >= rule.min_mrr
      and (h.tier = 'red' or p.health_score - h.health_score >= rule.threshold)
)

select
    rule.segment_key,
    a.account_id,
    null::text as user_id,
    null::text as user_email,
    format(
        'Pays %s/month; health %s (%s)%s',
        {{ product_money('a.mrr') }}, a.health_score, a.tier,
        case when a.earlier_score is not null
            then format(', %s points in %s days (from %s)',
                case when a.health_score <= a.earlier_score then '-' else '+' end || abs(a.health_score - a.earlier_score),
                rule.days, a.earlier_score)
            else '' end
    ) as reason,
    (row_number() over (order by a.mrr desc, a.health_score, a.account_id))::integer as priority
from at_risk as a
cross join {{ product_segment_rule('at_risk_high_value') }}

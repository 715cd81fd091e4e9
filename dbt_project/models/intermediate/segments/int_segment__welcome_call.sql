-- New signups in their first `days` days (signup day = day 0) on a high-value plan
-- (seed billing_products.is_high_value_plan) or worth at least `min_mrr` a month: contract
-- MRR (list price before discounts) for a payer, and for a trial the list price of the
-- items it is trying (list_mrr), which it pays once it converts. So a trial qualifies on
-- the value of its subscription, not only through a high-value plan.
select
    rule.segment_key,
    a.account_id,
    null::text as user_id,
    null::text as user_email,
    format(
        'Signed up on %s (%s days ago)%s%s',
        a.signup_date, rule.as_of_date - a.signup_date,
        case when p.is_high_value_plan then format(' on the high-value %s plan', st.plan) else '' end,
        case
            when st.contract_mrr >= rule.min_mrr
                then format('; contract MRR %s, at least %s', {{ product_money('st.contract_mrr') }}, {{ product_money('rule.min_mrr') }})
            when st.list_mrr >= rule.min_mrr
                then format('; trial worth %s/month at list price, at least %s', {{ product_money('st.list_mrr') }}, {{ product_money('rule.min_mrr') }})
            else ''
        end
    ) as reason,
    null::integer as priority
from {{ ref('int_product__accounts') }} as a
cross join {{ product_segment_rule('welcome_call') }}
{{ segment_audience('a.account_id') }}
left join {{ ref('billing_products') }} as p on p.plan = st.plan
where a.signup_date > rule.as_of_date - rule.days
  and a.signup_date <= rule.as_of_date
  and (coalesce(p.is_high_value_plan, false) or greatest(st.contract_mrr, st.list_mrr) >= rule.min_mrr)

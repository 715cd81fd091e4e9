-- Accounts that churned in the last `days` days (audience: the churned stage), with the
-- likely causes from marts.churn_causes in the reason: required onboarding milestones
-- never reached, the Stripe cancellation reason and feedback, an invoice left unpaid, a
-- repeated support topic.
with churned as (
    select st.account_id, st.stage_since as churned_on
    from {{ ref('int_account_states_as_of') }} as st
    cross join {{ product_segment_rule('win_back') }}
    where st.lifecycle_stage = any(rule.stages)
      and st.lifecycle_stage = 'churned'
      and st.stage_since > rule.as_of_date - rule.days
),

causes as (
    select
        c.account_id,
        c.churned_on,
        max(x.last_mrr) as last_mrr,
        concat_ws('; ',
            'onboarding never finished: missing '
                || string_agg(x.cause, ', ' order by x.cause) filter (where x.cause_type = 'onboarding'),
            string_agg(x.detail, '; ' order by x.cause_type, x.cause)
                filter (where x.cause_type not in ('onboarding', 'none_on_record'))
        ) as cause
    from churned as c
    inner join {{ ref('int_product__churn_causes') }} as x on x.account_id = c.account_id and x.churned_on = c.churned_on
    group by 1, 2
)

select
    rule.segment_key,
    c.account_id,
    null::text as user_id,
    null::text as user_email,
    format(
        'Churned on %s%s; likely cause: %s',
        c.churned_on, coalesce(' after paying ' || {{ product_money('c.last_mrr') }} || '/month', ''),
        coalesce(nullif(c.cause, ''), 'none on record')
    ) as reason,
    null::integer as priority
from causes as c
cross join {{ product_segment_rule('win_back') }}

{#-
  Why accounts churned: one row per churn (an account entering the lifecycle stage
  churned, int_account_lifecycle_spells) and likely cause. Causes, each from its source:
    onboarding       a required milestone never reached (int_product__activation: not activated, window closed), one row each
    cancellation     the Stripe cancellation reason, feedback and comment of the account's
                     latest cancelled subscription before churn (cancellation_details)
    failed_payment   an invoice overdue in the 90 days before churn (billing spells)
    support_topic    a topic with at least product_churn_support_tickets tickets in the
                     product_churn_support_months months before churn
    none_on_record   none of the above
-#}
{{ config(materialized='table') }}
-- The MRR of the paying spell that ended the day before is joined here, once, not to the
-- causes afterwards: the daily run reads the spells tables just rebuilt (no statistics
-- yet), and a join of two derived results planned on default estimates became a nested
-- loop over churns x causes (13 million comparisons, most of this model's second).
with churns as (
    select l.account_id, l.valid_from as churned_on, b.mrr as last_mrr
    from {{ ref('int_account_lifecycle_spells') }} as l
    left join {{ ref('int_billing_account_spells') }} as b
        on b.account_id = l.account_id and b.is_paying and b.valid_to = l.valid_from - 1
    where l.lifecycle_stage = 'churned'
),

onboarding as (
    select c.account_id, c.churned_on, 'onboarding' as cause_type, m.milestone as cause,
        'onboarding never finished: missing ' || m.milestone as detail
    from churns as c
    inner join {{ ref('int_product__activation') }} as a
        on a.account_id = c.account_id and not a.is_activated
    inner join {{ ref('int_product__as_of') }} as o on o.as_of_date >= a.activation_deadline
    cross join lateral jsonb_array_elements_text(a.milestones_missing) as m (milestone)
),

-- the subscriptions the churned accounts' customers cancelled before churning, their
-- details read here, after the join: a Stripe subscription is a JSON document, and a filter
-- on the details alone would be read from every subscription in Stripe (most of the time)
cancelled as materialized (
    select
        c.account_id, c.churned_on, s.canceled_at, s.subscription_id,
        s.cancellation_reason, s.cancellation_feedback, s.cancellation_comment
    from churns as c
    inner join {{ ref('stg_stripe__customers') }} as cu on cu.account_id = c.account_id
    inner join {{ ref('stg_stripe__subscriptions') }} as s on s.customer_id = cu.customer_id
    where s.canceled_at < (c.churned_on + 1)::timestamp at time zone 'UTC'
),

cancellations as (
    select distinct on (s.account_id, s.churned_on)
        s.account_id, s.churned_on, 'cancellation' as cause_type,
        concat_ws(' / ', s.cancellation_reason, s.cancellation_feedback) as cause,
        'cancelled in Stripe: ' || concat_ws(', ', s.cancellation_reason, 'feedback ' || s.cancellation_feedback,
            'comment "' || s.cancellation_comment || '"') as detail
    from cancelled as s
    where coalesce(s.cancellation_reason, s.cancellation_feedback, s.cancellation_comment) is not null
    -- two subscriptions cancelled in the same second (a failed payment's and a requested
    -- cancellation): the latest subscription id, so the pick does not depend on the plan
    order by s.account_id, s.churned_on, s.canceled_at desc, s.subscription_id desc
),

failed_payments as (
    select c.account_id, c.churned_on, 'failed_payment' as cause_type, 'invoice overdue' as cause,
        'payment failed: invoice overdue since ' || min(b.valid_from) as detail
    from churns as c
    inner join {{ ref('int_billing_account_spells') }} as b
        on b.account_id = c.account_id and b.is_past_due
        and b.valid_from < c.churned_on and b.valid_from >= c.churned_on - 90
    group by 1, 2
),

support_topics as (
    select c.account_id, c.churned_on, 'support_topic' as cause_type, t.topic as cause,
        format('repeated support topic ''%s'' (%s tickets)', t.topic, count(*)) as detail
    from churns as c
    inner join {{ ref('stg_helpdesk__tickets') }} as t
        on t.account_id = c.account_id
        and t.topic is not null
        and t.created_at < (c.churned_on + 1)::timestamp at time zone 'UTC'
        and t.created_at >= (c.churned_on - make_interval(months => {{ var('product_churn_support_months') }}))::timestamp at time zone 'UTC'
    group by c.account_id, c.churned_on, t.topic
    having count(*) >= {{ var('product_churn_support_tickets') }}
),

causes as (
    select * from onboarding
    union all select * from cancellations
    union all select * from failed_payments
    union all select * from support_topics
)

select
    c.account_id::text as account_id,
    c.churned_on::date as churned_on,
    c.last_mrr::numeric(14, 2) as last_mrr,
    coalesce(x.cause_type, 'none_on_record')::text as cause_type,
    coalesce(x.cause, 'none on record')::text as cause,
    coalesce(x.detail, 'none on record')::text as detail
from churns as c
left join causes as x using (account_id, churned_on)

-- Accounts that churned in the last `days` days (by default the audience is the churned
-- stage), with the likely causes in the reason: required onboarding milestones never
-- reached, the Stripe cancellation reason and feedback, a support topic with `threshold`
-- or more tickets in the `months` months before churn, and an invoice left unpaid.
with churned as (
    select st.account_id, st.stage_since as churned_on, st.last_paid_on
    from {{ ref('int_account_states_as_of') }} as st
    cross join {{ product_segment_rule('win_back') }}
    where st.lifecycle_stage = any(rule.stages)
      and st.lifecycle_stage = 'churned'
      and st.stage_since > rule.as_of_date - rule.days
),

last_mrr as (
    select c.account_id, b.mrr
    from churned as c
    inner join {{ ref('int_billing_account_spells') }} as b
        on b.account_id = c.account_id and b.is_paying and c.last_paid_on between b.valid_from and coalesce(b.valid_to, c.last_paid_on)
),

cancellations as (
    select distinct on (cu.account_id)
        cu.account_id, s.cancellation_reason, s.cancellation_feedback, s.cancellation_comment
    from {{ ref('stg_stripe__subscriptions') }} as s
    inner join {{ ref('stg_stripe__customers') }} as cu using (customer_id)
    inner join churned as c on c.account_id = cu.account_id
    where s.canceled_at is not null
    order by cu.account_id, s.canceled_at desc
),

unpaid as (
    select c.account_id, min(b.valid_from) as overdue_on
    from churned as c
    inner join {{ ref('int_billing_account_spells') }} as b
        on b.account_id = c.account_id and b.is_past_due and b.valid_from <= c.churned_on
        and b.valid_from > c.churned_on - 90
    group by 1
),

topics as (
    select account_id, string_agg(format('''%s'' (%s tickets)', topic, tickets), ', ' order by tickets desc, topic) as topics
    from (
        select t.account_id, t.topic, count(*) as tickets
        from {{ ref('stg_helpdesk__tickets') }} as t
        inner join churned as c on c.account_id = t.account_id
        cross join {{ product_segment_rule('win_back') }}
        where t.topic is not null
          and t.created_at < (c.churned_on + 1)::timestamp at time zone 'UTC'
          and t.created_at >= (c.churned_on - make_interval(months => rule.months))::timestamp at time zone 'UTC'
        group by 1, 2
        having count(*) >= max(rule.threshold)
    ) as per_topic
    group by 1
),

causes as (
    select
        c.account_id,
        c.churned_on,
        m.mrr,
        concat_ws('; ',
            case when a.activation_status = 'not_activated'
                then 'onboarding never finished: missing '
                    || (select string_agg(x, ', ') from jsonb_array_elements_text(a.milestones_missing) as x) end,
            case when k.account_id is not null and coalesce(k.cancellation_reason, k.cancellation_feedback) is not null
                then 'cancelled in Stripe: ' || concat_ws(', ',
                    k.cancellation_reason, 'feedback ' || k.cancellation_feedback, 'comment "' || k.cancellation_comment || '"') end,
            case when p.account_id is not null then 'payment failed: invoice overdue since ' || p.overdue_on end,
            case when t.account_id is not null then 'repeated support topic ' || t.topics end
        ) as cause
    from churned as c
    left join last_mrr as m using (account_id)
    left join {{ ref('account_activation') }} as a using (account_id)
    left join cancellations as k using (account_id)
    left join unpaid as p using (account_id)
    left join topics as t using (account_id)
)

select
    rule.segment_key,
    c.account_id,
    null::text as user_id,
    null::text as user_email,
    format(
        'Churned on %s%s; likely cause: %s',
        c.churned_on, coalesce(' after paying ' || {{ product_money('c.mrr') }} || '/month', ''),
        coalesce(nullif(c.cause, ''), 'none on record')
    ) as reason,
    null::integer as priority
from causes as c
cross join {{ product_segment_rule('win_back') }}

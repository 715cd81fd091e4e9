-- A plan or seat change that raised contract MRR (list price, before discounts) in the last
-- `days` days, from a paying state. A discount that expires leaves contract MRR unchanged,
-- so it is no upgrade; an account that cancelled a subscription since is left out.
with spells as (
    select
        b.*,
        lag(b.is_paying) over w as was_paying,
        lag(b.contract_mrr) over w as previous_contract_mrr,
        lag(b.plan) over w as previous_plan,
        lag(b.paid_seats) over w as previous_seats
    from {{ ref('int_billing_account_spells') }} as b
    window w as (partition by b.account_id order by b.valid_from)
),

upgrades as (
    select distinct on (s.account_id)
        s.account_id, s.valid_from as upgraded_on, s.plan, s.previous_plan, s.paid_seats, s.previous_seats,
        s.contract_mrr, s.previous_contract_mrr
    from spells as s
    cross join {{ product_segment_rule('just_upgraded') }}
    where s.valid_from > rule.as_of_date - rule.days
      and s.valid_from <= rule.as_of_date
      and s.is_paying and s.was_paying
      and s.contract_mrr > s.previous_contract_mrr
      and (s.plan is distinct from s.previous_plan or s.paid_seats is distinct from s.previous_seats)
    order by s.account_id, s.valid_from desc
),

-- the Stripe customers of the upgraded accounts first, so only their subscriptions have
-- their cancellation read (a Stripe subscription is a JSON document: every field read
-- from every subscription was most of this model's time)
upgraded_customers as materialized (
    select u.account_id, u.upgraded_on, c.customer_id
    from upgrades as u
    inner join {{ ref('stg_stripe__customers') }} as c using (account_id)
)

select
    rule.segment_key,
    u.account_id,
    null::text as user_id,
    null::text as user_email,
    format(
        'Upgraded on %s: %s, contract MRR %s -> %s',
        u.upgraded_on,
        concat_ws(', ',
            case when u.plan is distinct from u.previous_plan
                then format('plan %s -> %s', coalesce(u.previous_plan, 'none'), coalesce(u.plan, 'none')) end,
            case when u.paid_seats is distinct from u.previous_seats
                then format('seats %s -> %s', coalesce(u.previous_seats, 0), coalesce(u.paid_seats, 0)) end),
        {{ product_money('u.previous_contract_mrr') }}, {{ product_money('u.contract_mrr') }}
    ) as reason,
    null::integer as priority
from upgrades as u
cross join {{ product_segment_rule('just_upgraded') }}
{{ segment_audience('u.account_id') }}
where not exists (
    select 1 from {{ ref('stg_stripe__subscriptions') }} as s
    inner join upgraded_customers as c using (customer_id)
    where c.account_id = u.account_id
      and s.canceled_at >= c.upgraded_on::timestamp at time zone 'UTC'
)

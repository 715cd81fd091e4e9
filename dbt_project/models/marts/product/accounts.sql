{#-
  One row per account as it stands on the as-of date (int_product__as_of): who it is, its
  lifecycle stage, billing in force that day, health, activation, last activity, NPS,
  open tickets, the segments it is in, and its owner. "Which accounts are at risk and
  why" is `where tier = 'red'` or `where 'at_risk_high_value' = any(segments)`, with the
  reasons in segment_members.
-#}
with as_of as (
    select as_of_date from {{ ref('int_product__as_of') }}
),

health as (
    select h.account_id, h.health_score, h.tier, h.change_7d, h.change_28d
    from {{ ref('int_product__health_daily') }} as h
    inner join as_of as o on h.date = o.as_of_date
),

last_key as (
    select m.account_id, max(m.last_key_event_date) as last_key_event_on
    from {{ ref('int_product__usage_monthly') }} as m
    cross join as_of as o
    where m.month <= o.as_of_date
    group by 1
),

last_nps as (
    select distinct on (account_id) account_id, score, (responded_at at time zone 'UTC')::date as responded_on
    from {{ ref('stg_nps__responses') }}
    where account_id is not null
    order by account_id, responded_at desc, response_id
),

tickets as (
    select account_id, count(*) as open_tickets
    from {{ ref('stg_helpdesk__tickets') }}
    where account_id is not null and resolved_at is null and coalesce(status, 'open') not in ('closed', 'solved', 'resolved')
    group by 1
),

segments as (
    select account_id, array_agg(distinct segment_key order by segment_key) as segments
    from {{ ref('segment_members') }}
    group by 1
),

owners as (
    select distinct on (c.account_id) c.account_id, c.owner
    from {{ ref('stg_stripe__customers') }} as c
    where c.owner is not null and c.account_id is not null
    order by c.account_id, c.created_at desc
)

select
    st.account_id::text as account_id,
    a.account_name::text as account_name,
    st.plan::text as plan,
    st.lifecycle_stage::text as lifecycle_stage,
    st.stage_since::date as stage_since,
    a.signed_up_at::timestamptz as signed_up_at,
    st.first_paid_on::date as first_paid_on,
    st.is_paying::boolean as is_paying,
    st.mrr::numeric(14, 2) as mrr,
    st.paid_seats::integer as paid_seats,
    h.health_score::numeric(5, 1) as health_score,
    h.tier::text as tier,
    h.change_7d::numeric(5, 1) as health_change_7d,
    h.change_28d::numeric(5, 1) as health_change_28d,
    act.activation_status::text as activation_status,
    act.milestones_missing::jsonb as milestones_missing,
    k.last_key_event_on::date as last_key_event_on,
    n.score::integer as last_nps_score,
    n.responded_on::date as last_nps_on,
    coalesce(t.open_tickets, 0)::integer as open_tickets,
    coalesce(sg.segments, array[]::text[])::text[] as segments,
    coalesce(ao.owner, ow.owner)::text as owner,
    st.as_of_date::date as as_of_date
from {{ ref('int_account_states_as_of') }} as st
left join {{ ref('int_product__accounts') }} as a using (account_id)
left join health as h using (account_id)
left join {{ ref('account_activation') }} as act using (account_id)
left join last_key as k using (account_id)
left join last_nps as n using (account_id)
left join tickets as t using (account_id)
left join segments as sg using (account_id)
left join owners as ow using (account_id)
left join {{ ref('account_owners') }} as ao using (account_id)

{#-
  One row per segment x member (account, or user for the NPS segments) as of
  int_product__as_of, with the reason it was selected and what a messaging tool needs.
  Every rule is a model int_segment__<key> in models/intermediate/segments (one per row
  of the seed product_segment_rules, all of one contracted shape); each keeps only its
  audience by lifecycle stage.
-#}
{%- set segment_keys = [
    'not_activated', 'inactive', 'just_upgraded', 'health_dropped', 'high_value_declining',
    'nps_detractors', 'nps_promoters', 'nps_top_promoters', 'repeated_support_topic',
    'at_risk_high_value', 'welcome_call', 'detractors_high_value', 'win_back',
] -%}

with members as (
    {% for key in segment_keys -%}
    select segment_key, account_id, user_id, user_email, reason, priority from {{ ref('int_segment__' ~ key) }}
    {% if not loop.last %}union all
    {% endif %}
    {%- endfor %}
),

as_of as (
    select as_of_date from {{ ref('int_product__as_of') }}
),

health as (
    select h.account_id, h.health_score, h.tier
    from {{ ref('int_product__health_daily') }} as h
    inner join as_of as o on h.date = o.as_of_date
)

select
    (m.segment_key || ':' || m.account_id || coalesce(':' || coalesce(m.user_id, m.user_email), ''))::text as member_key,
    m.segment_key::text as segment_key,
    m.account_id::text as account_id,
    m.user_id::text as user_id,
    m.reason::text as reason,
    (case when m.user_id is not null or m.user_email is not null
        then coalesce(m.user_email, u.email) else a.contact_email end)::text as email,
    (case when m.user_id is not null or m.user_email is not null
        then u.user_name else a.contact_name end)::text as name,
    a.account_name::text as account_name,
    coalesce(st.plan, a.plan)::text as plan,
    coalesce(st.mrr, 0)::numeric(14, 2) as mrr,
    h.health_score::numeric(5, 1) as health_score,
    h.tier::text as tier,
    o.as_of_date::date as as_of_date,
    st.lifecycle_stage::text as lifecycle_stage,
    m.priority::integer as priority
from members as m
cross join as_of as o
left join {{ ref('int_product__accounts') }} as a using (account_id)
left join {{ ref('int_product__users') }} as u on u.user_id = m.user_id
left join {{ ref('int_account_states_as_of') }} as st on st.account_id = m.account_id
left join health as h on h.account_id = m.account_id

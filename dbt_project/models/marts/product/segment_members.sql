{#-
  One row per segment x member (account, or user for the NPS segments) as of
  int_product__as_of, with the reason it was selected and what a messaging tool needs.
  Rules and their parameters: seed product_segment_rules.
-#}
{%- set segment_models = [
    'int_product__segment_not_activated',
    'int_product__segment_health_dropped',
    'int_product__segment_high_value_declining',
    'int_product__segment_nps_detractors',
    'int_product__segment_nps_promoters',
    'int_product__segment_nps_top_promoters',
    'int_product__segment_just_upgraded',
    'int_product__segment_repeated_support_topic',
    'int_product__segment_inactive',
] -%}

with members as (
    {% for m in segment_models -%}
    select segment_key, account_id, user_id, user_email, reason from {{ ref(m) }}
    {% if not loop.last %}union all
    {% endif %}
    {%- endfor %}
),

as_of as (
    select as_of_date from {{ ref('int_product__as_of') }}
),

health as (
    select h.account_id, h.health_score, h.tier
    from {{ ref('account_health_daily') }} as h
    inner join as_of as o on h.date = o.as_of_date
),

billing as (
    select b.account_id, b.mrr
    from {{ ref('int_product__billing_monthly') }} as b
    inner join as_of as o on b.month = date_trunc('month', o.as_of_date)::date
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
    a.plan::text as plan,
    coalesce(b.mrr, 0)::numeric(14, 2) as mrr,
    h.health_score::numeric(5, 1) as health_score,
    h.tier::text as tier,
    o.as_of_date::date as as_of_date
from members as m
cross join as_of as o
left join {{ ref('int_product__accounts') }} as a using (account_id)
left join {{ ref('int_product__users') }} as u on u.user_id = m.user_id
left join billing as b on b.account_id = m.account_id
left join health as h on h.account_id = m.account_id

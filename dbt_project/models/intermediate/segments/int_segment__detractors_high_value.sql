-- NPS detractors (latest answer in the last `days` days scored <= `threshold`) whose
-- account pays at least `min_mrr`: one member per respondent, for a call rather than an
-- automated discount.
with latest as (
    select distinct on (coalesce(r.user_id, r.email, r.response_id))
        r.response_id, r.account_id, r.user_id, r.email, r.score, r.responded_at
    from {{ ref('stg_nps__responses') }} as r
    cross join {{ product_segment_rule('detractors_high_value') }}
    where (r.responded_at at time zone 'UTC')::date > rule.as_of_date - rule.days
      and (r.responded_at at time zone 'UTC')::date <= rule.as_of_date
      and r.account_id is not null
    order by coalesce(r.user_id, r.email, r.response_id), r.responded_at desc, r.response_id
)

select
    rule.segment_key,
    l.account_id,
    l.user_id,
    l.email as user_email,
    format(
        'NPS %s on %s (detractor: %s or less) from an account paying %s/month',
        l.score, (l.responded_at at time zone 'UTC')::date, rule.threshold, {{ product_money('st.mrr') }}
    ) as reason,
    null::integer as priority
from latest as l
cross join {{ product_segment_rule('detractors_high_value') }}
{{ segment_audience('l.account_id') }}
where l.score <= rule.threshold
  and st.is_paying
  and st.mrr >= rule.min_mrr

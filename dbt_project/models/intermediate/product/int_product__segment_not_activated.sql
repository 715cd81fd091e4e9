{{ config(materialized='table') }}
-- Accounts not activated `days` or more days after signup, signed up within the last `months`.
select
    rule.segment_key,
    a.account_id,
    null::text as user_id,
    null::text as user_email,
    format(
        'Not activated %s days after signup on %s (required milestones reached: %s of %s%s)',
        rule.as_of_date - a.signup_date, a.signup_date, a.required_reached, a.milestones_required,
        coalesce(': ' || (select string_agg(m, ', ') from jsonb_array_elements_text(a.milestones_reached) as m), '')
    ) as reason
from {{ ref('account_activation') }} as a
cross join {{ product_segment_rule('not_activated') }}
where not a.is_activated
  and rule.as_of_date - a.signup_date >= rule.days
  and a.signup_date > (rule.as_of_date - make_interval(months => rule.months))::date

-- Accounts still onboarding (by default trialing or paying) `days` or more days after
-- signup without every required milestone, signed up within the last `months` months.
-- The reason names the required milestones still missing.
select
    rule.segment_key,
    a.account_id,
    null::text as user_id,
    null::text as user_email,
    format(
        'Not activated %s days after signup on %s: missing %s (%s of %s required milestones reached)',
        rule.as_of_date - a.signup_date, a.signup_date,
        (select string_agg(m, ', ') from jsonb_array_elements_text(a.milestones_missing) as m),
        a.required_reached, a.milestones_required
    ) as reason,
    null::integer as priority
from {{ ref('int_product__activation') }} as a
cross join {{ product_segment_rule('not_activated') }}
{{ segment_audience('a.account_id') }}
where not a.is_activated
  and rule.as_of_date - a.signup_date >= rule.days
  and a.signup_date > (rule.as_of_date - make_interval(months => rule.months))::date

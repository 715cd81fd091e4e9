-- One row per account: activation milestones and time to value (int_product__activation,
-- incremental) plus the status on the as-of date, which moves every day for accounts whose
-- window is still open and so is not stored with the milestones.
select
    a.account_id,
    a.signed_up_at,
    a.signup_date,
    a.milestones_required,
    a.required_reached,
    a.milestones_reached_count,
    a.milestones_reached,
    a.milestone_dates,
    a.milestones_missing,
    a.activated_on,
    a.days_to_value,
    a.is_activated,
    a.activation_deadline,
    (case
        when a.is_activated then 'activated'
        when o.as_of_date < a.activation_deadline then 'in_progress'
        else 'not_activated'
    end)::text as activation_status
from {{ ref('int_product__activation') }} as a
cross join {{ ref('int_product__as_of') }} as o

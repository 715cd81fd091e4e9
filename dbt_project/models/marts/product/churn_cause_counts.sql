{#- Churn causes of the last product_churn_cause_months months (churns from the first day
    of that window to the as-of date), counted: churned accounts per cause, and their share
    of all churns in the window (an account can have several causes). -#}
with window_churns as (
    select c.*
    from {{ ref('int_product__churn_causes') }} as c
    cross join {{ ref('int_product__as_of') }} as o
    where c.churned_on > (o.as_of_date - make_interval(months => {{ var('product_churn_cause_months') }}))::date
      and c.churned_on <= o.as_of_date
),

total as (
    select count(distinct (account_id, churned_on)) as churns from window_churns
)

select
    ((select as_of_date from {{ ref('int_product__as_of') }})
        - make_interval(months => {{ var('product_churn_cause_months') }}) + interval '1 day')::date as window_start,
    (select as_of_date from {{ ref('int_product__as_of') }})::date as window_end,
    w.cause_type::text as cause_type,
    w.cause::text as cause,
    count(distinct (w.account_id, w.churned_on))::integer as churns,
    round(count(distinct (w.account_id, w.churned_on))::numeric / nullif(t.churns, 0), 4)::numeric(5, 4) as share_of_churns
from window_churns as w
cross join total as t
group by w.cause_type, w.cause, t.churns

{#- The segment rules as analysts read them: one row per segment of seed
    product_segment_rules, with its audience (lifecycle stages) as an array. The
    analyst role reads marts only; this is where it finds what each segment means. -#}
select
    segment_key::text as segment_key,
    enabled::boolean as enabled,
    description::text as description,
    coalesce(string_to_array(nullif(trim(stages), ''), ' '), array['trialing', 'active', 'past_due'])::text[]
        as audience_stages,
    days::integer as days,
    months::integer as months,
    threshold::numeric as threshold,
    min_mrr::numeric as min_mrr,
    share::numeric as share,
    stay_days::integer as stay_days
from {{ ref('product_segment_rules') }}

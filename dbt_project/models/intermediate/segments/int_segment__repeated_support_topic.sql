-- Accounts with at least `threshold` tickets on the same topic opened in the last `days` days.
with topics as (
    select
        t.account_id,
        t.topic,
        count(*) as tickets,
        max((t.created_at at time zone 'UTC')::date) as latest_on
    from {{ ref('stg_helpdesk__tickets') }} as t
    cross join {{ product_segment_rule('repeated_support_topic') }}
    where (t.created_at at time zone 'UTC')::date > rule.as_of_date - rule.days
      and (t.created_at at time zone 'UTC')::date <= rule.as_of_date
      and t.account_id is not null
      and t.topic is not null
    group by 1, 2
    having count(*) >= max(rule.threshold)
)

select
    rule.segment_key,
    t.account_id,
    null::text as user_id,
    null::text as user_email,
    string_agg(
        format('%s tickets on topic ''%s'' in the last %s days (latest %s)', t.tickets, t.topic, rule.days, t.latest_on),
        '; ' order by t.tickets desc, t.topic
    ) as reason,
    null::integer as priority
from topics as t
cross join {{ product_segment_rule('repeated_support_topic') }}
{{ segment_audience('t.account_id') }}
group by rule.segment_key, t.account_id

{#- The recurring lines in force at each snapshot instant, as CTEs `unpaid_since` and
    `in_force` (append `, ` and more CTEs after the call). The one implementation of the
    snapshot rules (docs/dbt.md) behind the month-end snapshot (int_subscription_items_snapshotted)
    and the day-end one (int_billing_account_spells).

    snapshots: a CTE with `snapshot_at` and the key columns `keys` (e.g. ['month'], or
    ['account_id', 'day']); lines: a CTE shaped like int_invoice_lines_normalized;
    match: the key columns lines share with snapshots (['account_id'] for per-account
    snapshots).
    A line counts at S when its period covers S (start < S <= end) and its subscription is
    not delinquent at S: the oldest invoice still unpaid at S has been due for longer than
    var finance_dunning_window_days. When several lines of one item cover S (a proration),
    the latest-starting one wins, a charge before a credit. `in_force` keeps that winner
    (line_rank = 1) and says whether the subscription has an overdue unpaid invoice at S
    (`is_past_due`: inside the dunning window, still counted). -#}
{% macro lines_in_force(snapshots, lines, keys, match=[]) -%}
{%- set on_keys -%}
    {%- for k in match %} and {{ lines }}.{{ k }} = {{ snapshots }}.{{ k }}{% endfor -%}
{%- endset -%}
unpaid_since as (
    select
        {% for k in keys %}{{ snapshots }}.{{ k }}, {% endfor %}
        {{ lines }}.subscription_id,
        min({{ lines }}.due_at) as unpaid_since_at
    from {{ snapshots }}
    inner join {{ lines }}
        on {{ lines }}.due_at <= {{ snapshots }}.snapshot_at
        and ({{ lines }}.paid_at is null or {{ lines }}.paid_at > {{ snapshots }}.snapshot_at)
        and {{ lines }}.amount - {{ lines }}.discount_amount > 0
        {{- on_keys }}
    group by {% for k in keys %}{{ loop.index }}, {% endfor %}{{ keys | length + 1 }}
),

covering as (
    select
        {% for k in keys if k not in match %}{{ snapshots }}.{{ k }}, {% endfor %}
        {{ snapshots }}.snapshot_at,
        {{ lines }}.*,
        unpaid_since.unpaid_since_at is not null as is_past_due,
        row_number() over (
            partition by {{ lines }}.subscription_item_id{% for k in keys %}, {{ snapshots }}.{{ k }}{% endfor %}
            order by {{ lines }}.period_start_at desc, {{ lines }}.amount desc, {{ lines }}.line_item_id
        ) as line_rank
    from {{ snapshots }}
    inner join {{ lines }}
        on {{ lines }}.period_start_at < {{ snapshots }}.snapshot_at
        and {{ lines }}.period_end_at >= {{ snapshots }}.snapshot_at
        {{- on_keys }}
    left join unpaid_since
        on unpaid_since.subscription_id = {{ lines }}.subscription_id
        {%- for k in keys %} and unpaid_since.{{ k }} = {{ snapshots }}.{{ k }}{% endfor %}
    where unpaid_since.unpaid_since_at is null
       or {{ snapshots }}.snapshot_at
          <= unpaid_since.unpaid_since_at + make_interval(days => {{ var('finance_dunning_window_days') }})
),

in_force as (
    select * from covering where line_rank = 1
)
{%- endmacro %}

{#- MRR of each subscription item at each month-end snapshot.

    A line counts at snapshot S when its service period covers S (start < S <= end) and
    its subscription is not delinquent at S. When several lines of one item cover S
    (a proration after a seat or plan change), the latest-starting one wins, a charge
    before a credit. Delinquent: the oldest invoice still unpaid at S has been due for
    longer than var finance_dunning_window_days; a past_due subscription inside the
    window stays active. -#}
with lines as (
    select * from {{ ref('int_invoice_lines_normalized') }}
),

months as (
    select * from {{ ref('int_finance_months_spined') }}
),

unpaid_since as (
    select
        months.month,
        lines.subscription_id,
        min(lines.due_at) as unpaid_since_at
    from months
    inner join lines
        on lines.due_at <= months.snapshot_at
        and (lines.paid_at is null or lines.paid_at > months.snapshot_at)
        and lines.amount - lines.discount_amount > 0
    group by 1, 2
),

covering as (
    select
        months.month,
        months.snapshot_at,
        lines.*,
        row_number() over (
            partition by lines.subscription_item_id, months.month
            order by lines.period_start_at desc, lines.amount desc, lines.line_item_id
        ) as line_rank
    from months
    inner join lines
        on lines.period_start_at < months.snapshot_at
        and lines.period_end_at >= months.snapshot_at
    left join unpaid_since
        on unpaid_since.month = months.month
        and unpaid_since.subscription_id = lines.subscription_id
    where unpaid_since.unpaid_since_at is null
       or months.snapshot_at
          <= unpaid_since.unpaid_since_at + make_interval(days => {{ var('finance_dunning_window_days') }})
)

select
    account_id,
    month,
    subscription_id,
    subscription_item_id,
    line_item_id,
    quantity,
    contract_mrr,
    mrr
from covering
where line_rank = 1

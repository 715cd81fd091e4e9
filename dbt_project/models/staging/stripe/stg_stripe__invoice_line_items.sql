{#- One row per invoice line (invoices.data.lines.data[]). Amounts are in the currency's
    minor unit (cents). `amount` is before discounts and excludes tax. -#}
select
    line ->> 'id' as line_item_id,
    inv.id as invoice_id,
    lines.line_number::int as line_number,
    line -> 'parent' ->> 'type' as parent_type,
    line -> 'parent' -> 'subscription_item_details' ->> 'subscription' as subscription_id,
    line -> 'parent' -> 'subscription_item_details' ->> 'subscription_item' as subscription_item_id,
    coalesce(
        (line -> 'parent' -> 'subscription_item_details' ->> 'proration')::boolean,
        (line -> 'parent' -> 'invoice_item_details' ->> 'proration')::boolean,
        false
    ) as is_proration,
    line -> 'pricing' -> 'price_details' ->> 'price' as price_id,
    lower(line ->> 'currency') as currency,
    (line ->> 'quantity')::bigint as quantity,
    (line ->> 'amount')::bigint as amount,
    (
        select coalesce(sum((d ->> 'amount')::bigint), 0)
        from jsonb_array_elements(coalesce(line -> 'discount_amounts', '[]'::jsonb)) as d
    ) as discount_amount,
    {{ stripe_ts("line -> 'period' ->> 'start'") }} as period_start_at,
    {{ stripe_ts("line -> 'period' ->> 'end'") }} as period_end_at,
    inv._extracted_at as invoice_extracted_at
from {{ source('stripe', 'stripe_invoices') }} as inv
cross join lateral jsonb_array_elements(coalesce(inv.data -> 'lines' -> 'data', '[]'::jsonb))
    with ordinality as lines(line, line_number)

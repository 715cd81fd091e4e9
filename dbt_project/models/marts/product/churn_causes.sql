-- Why accounts churned, one row per churn and likely cause (int_product__churn_causes).
select * from {{ ref('int_product__churn_causes') }}

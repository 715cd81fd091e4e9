{#- A Stripe Unix-seconds field of a jsonb object as timestamptz (null stays null). -#}
{% macro stripe_ts(json_expr) -%}
    to_timestamp(({{ json_expr }})::bigint)
{%- endmacro %}

-- Top NPS promoters (top 5% by default): handed to a person.
{{ product_nps_segment('nps_top_promoters', 'top') }}

-- NPS promoters: the top share of respondents (referral asks).
{{ product_nps_segment('nps_promoters', 'top') }}

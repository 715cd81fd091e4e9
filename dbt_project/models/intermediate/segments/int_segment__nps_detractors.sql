-- NPS detractors: the bottom share of respondents (save offers).
{{ product_nps_segment('nps_detractors', 'bottom') }}

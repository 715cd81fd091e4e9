-- Accounts in the audience (by default current customers) whose health fell into red, or
-- by `threshold` points or more, since `days` days earlier. Hysteresis: the rule is
-- evaluated on each of the last `stay_days` days, and a member stays until it has failed on
-- `stay_days` consecutive days (the reason is the latest day it held).
-- the audience's scores of the evaluated days and of the `days` days before them, read once
-- per account as one range of the (account, date) index; each day is then compared with
-- the score `days` earlier in memory (a lookup of that earlier score per day and account
-- was most of this model's time)
with scores as (
    select h.account_id, h.date, h.health_score, h.tier
    from {{ ref('int_product__health_daily') }} as h
    cross join {{ product_segment_rule('health_dropped') }}
    {{ segment_audience('h.account_id') }}
    where {{ segment_window('health_dropped', 'h.date', reach='rule.days') }}
),

held as (
    select
        rule.segment_key,
        h.account_id,
        null::text as user_id,
        null::text as user_email,
        format(
            'Health %s (%s), %s from %s (%s) %s days earlier',
            h.health_score, h.tier,
            case when h.tier = 'red' and p.tier <> 'red' then 'dropped into red' else 'down ' || (p.health_score - h.health_score) || ' points' end,
            p.health_score, p.tier, rule.days
        ) as reason,
        null::integer as priority,
        h.date as day
    from scores as h
    cross join {{ product_segment_rule('health_dropped') }}
    inner join scores as p
        on p.account_id = h.account_id and p.date = h.date - rule.days
    where h.date > rule.as_of_date - rule.stay_days
      and (
          (h.tier = 'red' and p.tier in ('yellow', 'green'))
          or p.health_score - h.health_score >= rule.threshold
      )
)

{{ segment_latest_hold('health_dropped', 'held') }}

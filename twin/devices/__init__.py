"""Vectorised device physics: every function works on arrays over households (and time).

Sign convention: powers are kW seen from the grid connection; consumption is positive,
generation negative only in the household's net load ``p_net_kw``. Battery power is positive
while charging.
"""

"""Reports: dashboards for 供销社 and province staff, and the plan targets they answer to.

``targets`` holds the quantitative goals of the Guangdong informatization plan
(粤府〔2013〕48号) with progress arithmetic; ``periods`` the Asia/Shanghai calendar
(day / ISO week / month buckets, month-on-month and year-on-year, query-string date ranges).
"""

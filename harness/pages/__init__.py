"""Page stage: table slices and chart specs -> markdown, through site_templates/.

In: run records, the tidy table and its summaries. Out: a `SitePlan` (every page with
its template and context, every chart spec) and the rendered markdown. Python decides
what is shown; the jinja2 templates only loop and format.
"""

"""Parse stage: text -> typed records (wrk and wrk2 summaries, Prometheus histograms).

In: the bytes of one file. Out: frozen records (`WrkResult`, `HistogramSeries`) or a
`RawFormatError` naming the file, line and what was expected. No pandas, no matplotlib,
no I/O beyond reading the file.
"""

"""Figure stage: table slices -> chart specs -> SVG files.

In: summaries of the tidy table. Out: `ChartSpec`s (plain, picklable data, colours
chosen) and the byte-stable SVGs drawn from them; matplotlib is imported only to draw.
"""

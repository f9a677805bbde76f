// Makes every plain markdown table sortable (click a header). document$ is Material's
// page-load observable, so this also runs after instant navigation.
document$.subscribe(function () {
  var tables = document.querySelectorAll("article table:not([class])");
  tables.forEach(function (table) {
    new Tablesort(table);
  });
});

// Progressive enhancement only: changing the sort order re-runs the search. Nothing here touches
// article content; the pages work without JavaScript.
document.addEventListener("DOMContentLoaded", () => {
  const sort = document.querySelector("form.search select[name=sort]");
  if (sort) sort.addEventListener("change", () => sort.form.submit());
});

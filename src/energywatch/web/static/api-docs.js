// Starts Swagger UI on /api/docs (a file of its own: the Content-Security-Policy allows no inline script)
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});

import assert from "node:assert/strict";
import { renderTemplate, templateProblem, templateVariables } from "./distro_template.ts";

Deno.test("renderTemplate() fills {{ var }} and leaves a value with an unset variable out", () => {
  assert.equal(renderTemplate("Bearer {{ token }}", { token: "t1" }), "Bearer t1");
  assert.equal(renderTemplate("{{a}}-{{ a }}", { a: "x" }), "x-x");
  assert.equal(renderTemplate("{{ a }} {{ b }}", { a: "x" }), undefined);
  assert.equal(renderTemplate("plain", {}), "plain");
  assert.equal(renderTemplate("{{ a }}", { a: "$& {{ b }}" }), "$& {{ b }}", "values are literal");
});

Deno.test("templateVariables() and templateProblem() read the references", () => {
  assert.deepEqual(templateVariables("{{ a }}{{b}}{{ a }}"), ["a", "b"]);
  assert.equal(templateProblem("{{ a }}"), undefined);
  assert.match(templateProblem("{{ a }") ?? "", /malformed template/);
  assert.match(templateProblem("{{ 1x }}") ?? "", /malformed template/);
});

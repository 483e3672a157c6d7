// Entry point of every board page: the token form, pending messages, then the page's own module.
import { flash, restoreToken, saveToken, showPendingFlash } from "./api.js";
import { initProject } from "./project.js";
import { initTask } from "./task.js";

function initTokenForm() {
  const form = document.getElementById("token-form");
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = form.querySelector("input").value.trim();
    if (!value) {
      flash("Enter the node's API token");
      return;
    }
    saveToken(value);
    location.reload();
  });
}

restoreToken();
initTokenForm();
showPendingFlash();
const page = document.body.dataset.page;
if (page === "project") initProject();
if (page === "task") initTask();

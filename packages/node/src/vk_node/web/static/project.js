// The project board: create a task (POST /api/tasks), then show the board again.
import { api, flash, flashAfterReload } from "./api.js";

export function initProject() {
  const form = document.getElementById("new-task");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    const title = form.elements.title.value.trim();
    const description = form.elements.description.value.trim();
    button.disabled = true;
    try {
      const task = await api("POST", "/tasks", {
        project_id: form.dataset.projectId,
        title,
        description: description || null,
      });
      flashAfterReload(`Created "${task.title}"`);
      location.reload();
    } catch (error) {
      flash(`Could not create the task: ${error.message}`);
      button.disabled = false;
    }
  });
}

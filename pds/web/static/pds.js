// GOV.UK Frontend's components (error summary focus, service navigation menu and the rest).
import { initAll } from "/assets/govuk-frontend.min.js";

initAll();

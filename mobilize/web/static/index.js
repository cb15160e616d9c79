import { applyLanguage } from "./app.js";

applyLanguage();

import { render } from "preact";
import { adoptTokenFromUrl } from "./api.ts";
import { App } from "./App.tsx";
import { initTheme } from "./theme.ts";
import "./styles.css";

initTheme();
adoptTokenFromUrl();
const root = document.getElementById("app");
if (root) render(<App />, root);

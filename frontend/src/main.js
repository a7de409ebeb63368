// Entry of the bundle (build.mjs): one classic script inlined into the page, so it also runs from file://.
import { boot } from './ui.js';

boot();

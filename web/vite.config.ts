// The console is served by `synaps api` under a Content-Security-Policy that allows no inline
// script, so the build must emit none: no module-preload polyfill (Vite would inline it).
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    target: 'es2022',
    reportCompressedSize: false,
  },
});

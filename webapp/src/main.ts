import { createApp } from 'vue'
import App from './App.vue'
import './style.css'

// the token came in the first URL and is now the server's cookie: take it out of the address bar
if (new URLSearchParams(location.search).has('token')) {
  history.replaceState(null, '', location.pathname + location.hash)
}
createApp(App).mount('#app')

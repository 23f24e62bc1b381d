// The lint messages in the page's language (<html lang>): Procflow's own rules and bpmnlint's.
//
// bpmn-js-bpmnlint shows each report's message as given; Procflow's pages are in English, Swedish and
// Finnish, so every message is translated here before it is reported (see translateRule in config.js).

const PROCFLOW = {
  sv: {
    "User task has no form (no formJsonSchemaFilename property): the case handler gets nothing to fill in":
      "Användaruppgiften har inget formulär (egenskapen formJsonSchemaFilename saknas): handläggaren får inget att fylla i",
    'Lane "{name}" names no group of the organisation, so its tasks reach no one (groups: {groups})':
      'Banan "{name}" motsvarar ingen grupp i organisationen, så dess uppgifter når ingen (grupper: {groups})',
    "{what} is refused by the sandbox: {error}": "{what} godtas inte av sandlådan: {error}",
    "{what} is refused by the sandbox (line {line}): {error}": "{what} godtas inte av sandlådan (rad {line}): {error}",
    "none": "inga",
  },
  fi: {
    "User task has no form (no formJsonSchemaFilename property): the case handler gets nothing to fill in":
      "Käyttäjätehtävällä ei ole lomaketta (ominaisuus formJsonSchemaFilename puuttuu): käsittelijällä ei ole mitään täytettävää",
    'Lane "{name}" names no group of the organisation, so its tasks reach no one (groups: {groups})':
      'Kaista "{name}" ei vastaa mitään organisaation ryhmää, joten sen tehtävät eivät tavoita ketään (ryhmät: {groups})',
    "{what} is refused by the sandbox: {error}": "{what}: hiekkalaatikko ei hyväksy koodia: {error}",
    "{what} is refused by the sandbox (line {line}): {error}": "{what}: hiekkalaatikko ei hyväksy koodia (rivi {line}): {error}",
    "none": "ei yhtään",
  },
};

// Where code sits, for "{what} is refused by the sandbox".
const WHAT = {
  en: {
    condition: "The condition",
    script: "The script",
    preScript: "The pre-script",
    postScript: "The post-script",
    timer: "The timer expression",
    conditionalEvent: "The event's condition",
    loopCardinality: "The loop cardinality",
    completionCondition: "The completion condition",
    loopCondition: "The loop condition",
    dueIn: "The due time (dueIn)",
    candidateGroupExpression: "The candidate group expression",
    assignee: "The assignee expression",
    excludeUsersFrom: "The excluded users expression (excludeUsersFrom)",
    messagePayload: "The message payload",
    correlation: "The correlation expression",
    parameter: "The parameter {name}",
  },
  sv: {
    condition: "Villkoret",
    script: "Skriptet",
    preScript: "Förskriptet",
    postScript: "Efterskriptet",
    timer: "Timeruttrycket",
    conditionalEvent: "Händelsens villkor",
    loopCardinality: "Antalet instanser",
    completionCondition: "Slutvillkoret",
    loopCondition: "Loopvillkoret",
    dueIn: "Förfallotiden (dueIn)",
    candidateGroupExpression: "Uttrycket för kandidatgrupp",
    assignee: "Uttrycket för tilldelad (assignee)",
    excludeUsersFrom: "Uttrycket för uteslutna användare (excludeUsersFrom)",
    messagePayload: "Meddelandets innehåll",
    correlation: "Korrelationsuttrycket",
    parameter: "Parametern {name}",
  },
  fi: {
    condition: "Ehto",
    script: "Skripti",
    preScript: "Esiskripti",
    postScript: "Jälkiskripti",
    timer: "Ajastimen lauseke",
    conditionalEvent: "Tapahtuman ehto",
    loopCardinality: "Instanssien määrä",
    completionCondition: "Päättymisehto",
    loopCondition: "Silmukan ehto",
    dueIn: "Määräaika (dueIn)",
    candidateGroupExpression: "Ehdokasryhmän lauseke",
    assignee: "Vastuuhenkilön lauseke (assignee)",
    excludeUsersFrom: "Poissuljettujen käyttäjien lauseke (excludeUsersFrom)",
    messagePayload: "Viestin sisältö",
    correlation: "Korrelaatiolauseke",
    parameter: "Parametri {name}",
  },
};

// bpmnlint's own messages (rules of config.js), exact text or a pattern with the parts it keeps.
const BPMNLINT = {
  sv: [
    ["A <Start Event> is not allowed in <Ad Hoc Sub Process>", "En starthändelse är inte tillåten i en ad hoc-underprocess"],
    ["An <End Event> is not allowed in <Ad Hoc Sub Process>", "En sluthändelse är inte tillåten i en ad hoc-underprocess"],
    ["Sequence flow is missing condition", "Sekvensflödet saknar villkor"],
    [/^(Process|Sub process) is missing end event$/, (m) => `${m[1] === "Process" ? "Processen" : "Underprocessen"} saknar sluthändelse`],
    [/^(Process|Sub process) is missing start event$/, (m) => `${m[1] === "Process" ? "Processen" : "Underprocessen"} saknar starthändelse`],
    [/^(Process|Sub process) has multiple blank start events$/, (m) => `${m[1] === "Process" ? "Processen" : "Underprocessen"} har flera tomma starthändelser`],
    ["A <Sequence Flow> outgoing from an <Event-based Gateway> must not be conditional", "Ett sekvensflöde från en händelsebaserad gateway får inte ha villkor"],
    ["An <Event-based Gateway> must have at least 2 outgoing <Sequence Flows>", "En händelsebaserad gateway måste ha minst två utgående sekvensflöden"],
    ["Start event is missing event definition", "Starthändelsen saknar händelsedefinition"],
    ["Incoming flows do not join", "Inkommande flöden förenas inte"],
    ["Element is missing name", "Elementet saknar namn"],
    ["Element is unused", "Elementet används inte"],
    ["Element name is not unique", "Elementets namn är inte unikt"],
    ["Element is missing label/name", "Elementet saknar etikett/namn"],
    [/^Element type <(.*)> is discouraged$/, (m) => `Elementtypen <${m[1]}> avråds`],
    [/^Duplicate link catch event with link name <(.*)> in scope$/, (m) => `Dubblerad länkmottagande händelse med länknamnet <${m[1]}>`],
    [/^Link (catch|throw) event with link name <(.*)> missing in scope$/, (m) => `${m[1] === "catch" ? "Mottagande" : "Kastande"} länkhändelse med länknamnet <${m[2]}> saknas`],
    ["Link event is missing link name", "Länkhändelsen saknar länknamn"],
    ["Element is missing bpmndi", "Elementet saknar diagraminformation (bpmndi)"],
    ["Element is not connected", "Elementet är inte anslutet"],
    ["SequenceFlow is a duplicate", "Sekvensflödet är en dubblett"],
    ["Duplicate outgoing sequence flows", "Dubblerade utgående sekvensflöden"],
    ["Duplicate incoming sequence flows", "Dubblerade inkommande sekvensflöden"],
    ["Gateway forks and joins", "Gatewayen både delar och förenar"],
    ["Element is an implicit end", "Elementet är ett implicit slut"],
    ["Flow splits implicitly", "Flödet delas implicit"],
    ["Element is an implicit start", "Elementet är en implicit start"],
    ["Element is outside of parent boundary", "Elementet ligger utanför sin förälders gräns"],
    ["Element overlaps with other element", "Elementet överlappar ett annat element"],
    ["Event has multiple event definitions", "Händelsen har flera händelsedefinitioner"],
    ["Start event must be blank", "Starthändelsen måste vara tom"],
    ["Gateway is superfluous. It only has one source and target.", "Gatewayen är överflödig: den har bara en källa och ett mål."],
    ["Sequence flow has superfluous label", "Sekvensflödet har en överflödig etikett"],
    ["Termination is superfluous.", "Avslutningen är överflödig."],
  ],
  fi: [
    ["A <Start Event> is not allowed in <Ad Hoc Sub Process>", "Ad hoc -aliprosessissa ei saa olla alkutapahtumaa"],
    ["An <End Event> is not allowed in <Ad Hoc Sub Process>", "Ad hoc -aliprosessissa ei saa olla lopputapahtumaa"],
    ["Sequence flow is missing condition", "Sekvenssivuolta puuttuu ehto"],
    [/^(Process|Sub process) is missing end event$/, (m) => `${m[1] === "Process" ? "Prosessilta" : "Aliprosessilta"} puuttuu lopputapahtuma`],
    [/^(Process|Sub process) is missing start event$/, (m) => `${m[1] === "Process" ? "Prosessilta" : "Aliprosessilta"} puuttuu alkutapahtuma`],
    [/^(Process|Sub process) has multiple blank start events$/, (m) => `${m[1] === "Process" ? "Prosessilla" : "Aliprosessilla"} on useita tyhjiä alkutapahtumia`],
    ["A <Sequence Flow> outgoing from an <Event-based Gateway> must not be conditional", "Tapahtumapohjaisesta yhdyskäytävästä lähtevällä sekvenssivuolla ei saa olla ehtoa"],
    ["An <Event-based Gateway> must have at least 2 outgoing <Sequence Flows>", "Tapahtumapohjaisesta yhdyskäytävästä on lähdettävä vähintään kaksi sekvenssivuota"],
    ["Start event is missing event definition", "Alkutapahtumalta puuttuu tapahtuman määrittely"],
    ["Incoming flows do not join", "Saapuvat vuot eivät yhdisty"],
    ["Element is missing name", "Elementiltä puuttuu nimi"],
    ["Element is unused", "Elementtiä ei käytetä"],
    ["Element name is not unique", "Elementin nimi ei ole yksilöllinen"],
    ["Element is missing label/name", "Elementiltä puuttuu nimi"],
    [/^Element type <(.*)> is discouraged$/, (m) => `Elementtityyppiä <${m[1]}> ei suositella`],
    [/^Duplicate link catch event with link name <(.*)> in scope$/, (m) => `Linkkinimellä <${m[1]}> on useita vastaanottavia linkkitapahtumia`],
    [/^Link (catch|throw) event with link name <(.*)> missing in scope$/, (m) => `${m[1] === "catch" ? "Vastaanottava" : "Lähettävä"} linkkitapahtuma linkkinimellä <${m[2]}> puuttuu`],
    ["Link event is missing link name", "Linkkitapahtumalta puuttuu linkkinimi"],
    ["Element is missing bpmndi", "Elementiltä puuttuu kaaviotieto (bpmndi)"],
    ["Element is not connected", "Elementtiä ei ole yhdistetty"],
    ["SequenceFlow is a duplicate", "Sekvenssivuo on kaksoiskappale"],
    ["Duplicate outgoing sequence flows", "Lähtevissä sekvenssivoissa on kaksoiskappaleita"],
    ["Duplicate incoming sequence flows", "Saapuvissa sekvenssivoissa on kaksoiskappaleita"],
    ["Gateway forks and joins", "Yhdyskäytävä sekä haarauttaa että yhdistää"],
    ["Element is an implicit end", "Elementti on implisiittinen loppu"],
    ["Flow splits implicitly", "Vuo haarautuu implisiittisesti"],
    ["Element is an implicit start", "Elementti on implisiittinen alku"],
    ["Element is outside of parent boundary", "Elementti on ylätason elementin rajojen ulkopuolella"],
    ["Element overlaps with other element", "Elementti on toisen elementin päällä"],
    ["Event has multiple event definitions", "Tapahtumalla on useita tapahtuman määrittelyjä"],
    ["Start event must be blank", "Alkutapahtuman on oltava tyhjä"],
    ["Gateway is superfluous. It only has one source and target.", "Yhdyskäytävä on tarpeeton: sillä on vain yksi lähde ja yksi kohde."],
    ["Sequence flow has superfluous label", "Sekvenssivuolla on tarpeeton nimi"],
    ["Termination is superfluous.", "Lopetus on tarpeeton."],
  ],
};

/** The page's language when it is one Procflow translates lint into, else English. */
export function pageLanguage() {
  const lang = (typeof document !== "undefined" && document.documentElement && document.documentElement.lang) || "en";
  const code = lang.slice(0, 2).toLowerCase();
  return code === "sv" || code === "fi" ? code : "en";
}

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** One of Procflow's own messages (English *template*) in the page's language, with *values* filled in. */
export function procflowMessage(template, values = {}) {
  const translated = (PROCFLOW[pageLanguage()] || {})[template] || template;
  return fill(translated, values);
}

/** Where code sits (codeOf's `what`), for the expression rule's message. */
export function whatLabel(what, name) {
  const labels = WHAT[pageLanguage()] || WHAT.en;
  return fill(labels[what] || WHAT.en[what] || what, { name: name || "" });
}

/** A bpmnlint message in the page's language (unchanged in English or when unknown). */
export function bpmnlintMessage(message) {
  for (const [english, translated] of BPMNLINT[pageLanguage()] || []) {
    if (typeof english === "string" && english === message) {
      return translated;
    }
    if (english instanceof RegExp) {
      const match = english.exec(message);
      if (match) {
        return translated(match);
      }
    }
  }
  return message;
}
